"""Webhook benchmarks: delivery lag under a steady stream of commands, and deliveries/s from a
backlog beside raw POSTs to the same receiver.

- Lag: the whole system (`taskstream run`) and a receiver on loopback that verifies every
  signature (testbed.receiver), subscribed to `TaskCreated`; `POST /task` at 100/s for 20 s
  through the gateway; from each 201 to the receiver taking that task's delivery, beside
  the projector's lag for the same tasks (to the row in the logger's `task_state`).
- Backlog: `BENCH_WEBHOOKS_EVENTS` (default 100,000) `TaskCreated` events in the stream, one
  subscription from the start of the log, `taskstream webhooks run` started, until a fast
  receiver (bench.webhook_receiver, its own process) has taken them all; beside it, the same
  receiver's rate for bare libcurl POSTs of the same bodies from as many threads as the
  process has senders (`WEBHOOKS_WORKERS`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pycurl
import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.core import percentile, result, servers
from bench.load import send_steadily
from bench.logger_service import _watch_applied, created, fill_stream, logger_database
from services.webhooks_service.adapters.subscriptions import sql_transaction
from services.webhooks_service.config import DeliverySettings
from services.webhooks_service.service_layer import subscriptions as webhooks
from services.webhooks_service.service_layer.fanout import CHECKPOINT_NAME
from services.webhooks_service.service_layer.subscriptions import TargetRules
from shared.config import service_database_url
from shared.events import encode
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from testbed.receiver import Receiver
from testbed.stack import TASKSTREAM, running_stack

COMMAND = "make bench BENCH=webhooks"
EVENTS = int(os.environ.get("BENCH_WEBHOOKS_EVENTS", "100000"))
WORKERS = DeliverySettings().workers
RAW_POSTS = 20_000


# -- lag ------------------------------------------------------------------------------------


def delivery_lag(pg: str, rds: str, rate: int = 100, seconds: int = 20
                 ) -> list[dict[str, Any]]:
    """From a 201 of POST /task (through the gateway) to the receiver taking its event; the
    projector's lag (to the task in the logger's task_state) measured alongside."""
    receiver = Receiver().start()
    projected: dict[int, float] = {}
    stop = threading.Event()
    try:
        with running_stack(pg, rds, extra_env={"WEBHOOKS_ALLOW_PRIVATE": "true"}) as stack:
            headers = stack.login()
            made = stack.session.post(f"{stack.base_url}/webhooks", headers=headers, json={
                "url": receiver.url, "event_types": ["TaskCreated"]})
            made.raise_for_status()
            receiver.secrets.append(made.json()["secret"])
            logger = create_engine(service_database_url(stack.env["DATABASE_URL"], "logger"))
            watcher = threading.Thread(target=_watch_applied, args=(logger, projected, stop))
            watcher.start()
            try:
                sent = send_steadily(stack, headers, rate, seconds)
                wait_for(lambda: set(sent) <= set(_arrivals(receiver)) and
                         set(sent) <= set(projected), 60, interval=0.1, what="every delivery")
            finally:
                stop.set()
                watcher.join()
                logger.dispose()
    finally:
        receiver.stop()
    assert receiver.unverified == []
    seen = _arrivals(receiver)
    lags = [max(0.0, seen[task] - at) * 1000 for task, at in sent.items()]
    reference = [max(0.0, projected[task] - at) * 1000 for task, at in sent.items()]
    notes = (f"{rate} POST /task per second for {seconds} s through the gateway, {len(lags)} "
             "deliveries, each signature verified by the receiver (standardwebhooks); from "
             "the 201 to the delivery's arrival")
    reference_notes = "the same tasks, from the 201 to the row in the logger's task_state"
    return [result("webhook delivery lag p50", percentile(lags, 50), "ms", COMMAND, notes),
            result("webhook delivery lag p99", percentile(lags, 99), "ms", COMMAND, notes),
            result("projector lag p50, same run", percentile(reference, 50), "ms", COMMAND,
                   reference_notes),
            result("projector lag p99, same run", percentile(reference, 99), "ms", COMMAND,
                   reference_notes)]


def _arrivals(receiver: Receiver) -> dict[int, float]:
    """When each task's delivery arrived (perf_counter's clock, as the sends are timed)."""
    offset = time.time() - time.perf_counter()
    with receiver.lock:
        return {int(r.event["task_id"]): r.at - offset for r in receiver.received}


# -- backlog --------------------------------------------------------------------------------


def _start_receiver() -> tuple[subprocess.Popen[str], str]:
    """The fast receiver in its own process; its URL."""
    process = subprocess.Popen([sys.executable, "-m", "bench.webhook_receiver"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{int(process.stdout.readline())}/hook"


def _taken(url: str) -> int:
    """How many POSTs the fast receiver has taken."""
    return int(requests.get(url.replace("/hook", "/count"), timeout=5).text)


def raw_posts_per_second(url: str, body: bytes, count: int = RAW_POSTS) -> float:
    """POSTs/s of bare libcurl handles (one per thread, kept alive) to the receiver."""
    per_thread = count // WORKERS

    def worker(_: int) -> None:
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HTTPHEADER, [b"Content-Type: application/json", b"Expect:"])
        handle.setopt(pycurl.POSTFIELDS, body)
        handle.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        for _ in range(per_thread):
            handle.perform()
        handle.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(worker, range(WORKERS)))
    return per_thread * WORKERS / (time.perf_counter() - started)


def _subscribe_from_the_start(engine: Engine, url: str) -> None:
    """One subscription to every event after seq 0, and the queueing checkpoint at 0 (a
    first start would otherwise begin at the stream's head)."""
    webhooks.create(sql_transaction(engine), TargetRules(allow_private=True), {"url": url})
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO consumer_checkpoints (name, last_seq) "
                                "VALUES (:name, 0)"), {"name": CHECKPOINT_NAME})


def _webhooks_env(database_url: str, rds: str, namespace: str) -> dict[str, str]:
    """The environment of `taskstream webhooks run` on the benchmark's servers."""
    return {**os.environ, "TASKSTREAM_ENV": "test", "WEBHOOKS_DATABASE_URL": database_url,
            "REDIS_URL": rds, "REDIS_NAMESPACE": namespace, "WEBHOOKS_ALLOW_PRIVATE": "true",
            "WEBHOOKS_METRICS_PORT": "0", "LOG_FORMAT": "text"}


def backlog_rate(pg: str, rds: str, count: int = EVENTS) -> list[dict[str, Any]]:
    """Deliveries/s from a backlog of `count` events, beside raw POSTs to the same receiver."""
    namespace = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(rds)
    receiver, url = _start_receiver()
    try:
        raw = raw_posts_per_second(url, encode(created(1)).encode())
        fill_stream(RedisStreamBus(client, f"{namespace}:events"), count)
        with logger_database(pg, "webhooks") as engine:
            _subscribe_from_the_start(engine, url)
            database_url = engine.url.render_as_string(hide_password=False)
            before = _taken(url)
            process = subprocess.Popen([str(TASKSTREAM), "webhooks", "run"],
                                       env=_webhooks_env(database_url, rds, namespace),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:  # timed from the first delivery: the process's start-up is not sending
                first = wait_for(lambda: _taken(url) - before, 120, interval=0.01,
                                 what="the first delivery")
                started = time.perf_counter()
                wait_for(lambda: _taken(url) - before >= count, 3600, interval=0.05,
                         what="every delivery")
                rate = (count - first) / (time.perf_counter() - started)
            finally:
                process.terminate()
                process.wait(60)
    finally:
        receiver.kill()
        receiver.wait()
        for key in client.scan_iter(match=f"{namespace}*"):
            client.delete(key)
        client.close()
    notes = (f"{count:,} TaskCreated events (one task each) in the stream, one subscription; "
             f"`taskstream webhooks run` ({WORKERS} senders), timed from the first delivery "
             "until the receiver (bench.webhook_receiver, its own process, answers 204) took "
             "them all")
    raw_notes = f"{WORKERS} threads, one libcurl handle each, kept alive, the same receiver"
    return [
        result("webhook deliveries from a backlog", rate, "deliveries/s", COMMAND, notes),
        result("raw POSTs to the same receiver", raw, "requests/s", COMMAND, raw_notes),
        result("webhook deliveries / raw POSTs", rate / raw, "ratio", COMMAND,
               "the two figures above, measured in one run"),
    ]


def run() -> list[dict[str, Any]]:
    """Both webhook benchmarks, on the same servers."""
    with servers() as (pg, rds):
        found = backlog_rate(pg, rds)
        found += delivery_lag(pg, rds)
    return found


if __name__ == "__main__":
    for row in run():
        print(f"{row['figure']}: {row['value']} {row['unit']}  ({row['notes']})")
