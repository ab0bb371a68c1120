"""The chaos scenario: seeded traffic through the gateway while faults hit the pipeline.

The seed (`CHAOS_SEED`) decides every command (kind, task, fields, CSV size) and every fault
(kind, when, how long down). Timing is real, so two runs with one seed send the same commands
and inject the same faults, while which requests happen to meet a fault may differ.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from testbed.processes import ChaosStack

FAULT_KINDS = ("kill_relay", "kill_projector", "flush_redis", "restart_redis",
               "restart_postgres")
STATUSES = ("active", "in_progress", "completed", "cancelled")
PRIORITIES = ("low", "medium", "high")
TRANSFER_EPOCH = dt.date(2001, 1, 1)


@dataclass(frozen=True)
class ScenarioConfig:
    """How much traffic and how many faults."""

    seed: int = 1
    commands: int = 300
    faults: int = 10
    workers: int = 3
    request_timeout: float = 20.0


@dataclass
class CommandResult:
    """One command sent through the gateway and what came back."""

    kind: str
    request_id: str
    status: int  # 0: no HTTP response at all (connection refused, timeout)
    body: Any = None
    task_id: int | None = None
    rows: int = 0  # CSV rows sent
    day: str | None = None  # transfer date sent

    @property
    def accepted(self) -> bool:
        """The command got a 2xx."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Fault:
    """One fault: what, after how many commands, and how long the victim stays down."""

    kind: str
    after_commands: int
    downtime: float


@dataclass
class Record:
    """Everything the run did, shared by the driver threads and the injector.

    It also keeps traffic and faults in step: a driver may issue a command only while fewer
    than `limit` have been issued, and the injector raises the limit as it injects, so the
    traffic can never run far ahead of the faults planned for it.
    """

    results: list[CommandResult] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    fault_log: list[str] = field(default_factory=list)
    issued: int = 0
    limit: float = float("inf")
    turn: threading.Condition = field(default_factory=threading.Condition)

    def add(self, result: CommandResult) -> None:
        """Record one command (thread-safe)."""
        with self.turn:
            self.results.append(result)

    def done(self) -> int:
        """How many commands have finished."""
        with self.turn:
            return len(self.results)

    def take_turn(self) -> None:
        """Wait until one more command may be issued, and count it."""
        with self.turn:
            self.turn.wait_for(lambda: self.issued < self.limit, timeout=600)
            self.issued += 1

    def allow(self, limit: float) -> None:
        """Let the traffic go on up to `limit` commands issued."""
        with self.turn:
            self.limit = limit
            self.turn.notify_all()


def plan_faults(config: ScenarioConfig, kinds_known: tuple[str, ...] = FAULT_KINDS
                ) -> list[Fault]:
    """The faults of a run: every kind once (when there are enough), the rest at random."""
    rng = random.Random(f"{config.seed}-faults")
    kinds = list(kinds_known)
    rng.shuffle(kinds)
    chosen = kinds[:config.faults] + [rng.choice(kinds_known)
                                      for _ in range(config.faults - len(kinds))]
    spacing = config.commands / (config.faults + 1)
    return [Fault(kind, int(spacing * (i + 1)), round(rng.uniform(0.1, 1.5), 2))
            for i, kind in enumerate(chosen)]


class Driver:
    """One client of the gateway: creates, updates, deletes, imports and transfers."""

    def __init__(self, chaos: ChaosStack, config: ScenarioConfig, worker: int,
                 record: Record, days: itertools.count[int]) -> None:
        self.chaos = chaos
        self.config = config
        self.worker = worker
        self.rng = random.Random(f"{config.seed}-driver-{worker}")
        self.record = record
        self.days = days
        self.live: list[int] = []
        self.session = requests.Session()
        self.headers: dict[str, str] = {}
        self.failures = 0
        self.pause = threading.Event()  # never set: its wait() is an interruptible sleep

    def run(self, count: int) -> None:
        """Send `count` commands, one after the other, backing off while the system fails."""
        for number in range(count):
            self.record.take_turn()
            request_id = f"chaos-{self.config.seed}-{self.worker}-{number}"
            kind = self.choose()
            result = getattr(self, kind)(request_id)
            self.after(result)
            self.record.add(result)
            self.failures = self.failures + 1 if result.status in (0, *range(500, 600)) else 0
            if self.failures:  # like any well-behaved client: retry later, not in a hot loop
                self.pause.wait(min(2.0, 0.2 * self.failures))

    def choose(self) -> str:
        """The next command's kind."""
        roll = self.rng.random()
        if not self.live or roll < 0.35:
            return "create"
        if roll < 0.65:
            return "update"
        if roll < 0.75:
            return "delete"
        return "import_csv" if roll < 0.93 else "transfer"

    def after(self, result: CommandResult) -> None:
        """Keep the list of this worker's live tasks."""
        if result.kind == "create" and result.accepted:
            self.live.append(int(result.body["id"]))
        elif result.kind == "delete" and result.task_id in self.live:
            self.live.remove(result.task_id)  # even when unsure whether it happened

    # -- the commands ---------------------------------------------------------------------

    def create(self, request_id: str) -> CommandResult:
        """POST /task with an Idempotency-Key."""
        body = {"title": f"chaos {request_id}", "priority": self.rng.choice(PRIORITIES),
                "status": self.rng.choice(("active", "in_progress"))}
        if self.rng.random() < 0.5:
            body["due_date"] = (TRANSFER_EPOCH + dt.timedelta(self.rng.randint(0, 9000))
                                ).isoformat()
        return self.send("create", request_id, "POST", "/task", json=body,
                         headers={"Idempotency-Key": uuid.uuid4().hex})

    def update(self, request_id: str) -> CommandResult:
        """PUT /task/<id>: always a new title, sometimes a new status and priority."""
        task_id = self.rng.choice(self.live)
        body: dict[str, Any] = {"title": f"chaos {request_id}"}
        if self.rng.random() < 0.6:
            body["status"] = self.rng.choice(STATUSES)
        if self.rng.random() < 0.3:
            body["priority"] = self.rng.choice(PRIORITIES)
        result = self.send("update", request_id, "PUT", f"/task/{task_id}", json=body)
        result.task_id = task_id
        return result

    def delete(self, request_id: str) -> CommandResult:
        """DELETE /task/<id>, a quarter of them purges."""
        task_id = self.rng.choice(self.live)
        purge = "?purge=true" if self.rng.random() < 0.25 else ""
        result = self.send("delete", request_id, "DELETE", f"/task/{task_id}{purge}")
        result.task_id = task_id
        return result

    def import_csv(self, request_id: str) -> CommandResult:
        """POST /upload-csv of 1-40 rows (now and then 400)."""
        rows = self.rng.randint(1, 40) if self.rng.random() < 0.9 else 400
        lines = ["title,priority,status"] + [
            f"chaos {request_id} row {n},{self.rng.choice(PRIORITIES)},"
            f"{self.rng.choice(STATUSES)}" for n in range(rows)]
        upload = io.BytesIO(("\n".join(lines) + "\n").encode())
        result = self.send("import_csv", request_id, "POST", "/upload-csv",
                           files={"file": ("tasks.csv", upload, "text/csv")},
                           headers={"Idempotency-Key": uuid.uuid4().hex})
        result.rows = rows
        return result

    def transfer(self, request_id: str) -> CommandResult:
        """POST /admin/transfer for a date no one asked for yet (the first: today)."""
        index = next(self.days)
        day = (dt.datetime.now(dt.UTC).date() if index == 0
               else TRANSFER_EPOCH + dt.timedelta(index)).isoformat()
        result = self.send("transfer", request_id, "POST", "/admin/transfer",
                           json={"date": day})
        result.day = day
        return result

    def send(self, kind: str, request_id: str, method: str, path: str,
             headers: dict[str, str] | None = None, **kwargs: Any) -> CommandResult:
        """One request with our request id; a lost token is renewed once."""
        for _ in range(2):
            try:
                response = self.session.request(
                    method, f"{self.chaos.stack.base_url}{path}",
                    headers={**self.auth(), "X-Request-ID": request_id, **(headers or {})},
                    timeout=self.config.request_timeout, **kwargs)
            except requests.RequestException:
                return CommandResult(kind, request_id, 0)
            if response.status_code != 401:
                break
            self.headers = {}
        try:
            body = response.json()
        except ValueError:
            body = None
        return CommandResult(kind, request_id, response.status_code, body)

    def auth(self) -> dict[str, str]:
        """The admin's Authorization header (logging in when there is none)."""
        if not self.headers:
            try:
                self.headers = self.chaos.stack.login()
            except requests.RequestException:
                return {}
        return self.headers


class Injector:
    """Applies the planned faults in order, each once enough commands have been sent."""

    KINDS = FAULT_KINDS

    def __init__(self, chaos: ChaosStack, faults: list[Fault], record: Record,
                 drivers_done: threading.Event) -> None:
        self.chaos = chaos
        self.faults = faults
        self.record = record
        self.drivers_done = drivers_done
        self.pause = threading.Event()  # never set: its wait() is an interruptible sleep
        self.error: BaseException | None = None
        self.slack = 3  # commands the traffic may run ahead of the next fault
        if faults:
            record.allow(faults[0].after_commands + self.slack)

    def run(self) -> None:
        """Inject every fault, keeping the first error for the main thread."""
        try:
            self.inject_all()
        except BaseException as exc:
            self.error = exc
        finally:
            self.record.allow(float("inf"))

    def inject_all(self) -> None:
        """Inject every fault; the ones due after the traffic ended still happen."""
        for number, fault in enumerate(self.faults):
            self.record.allow(fault.after_commands + self.slack)
            while self.record.done() < fault.after_commands and not self.drivers_done.is_set():
                self.pause.wait(0.05)
            started, after = time.monotonic(), self.record.done()
            following = self.faults[number + 1:]
            self.record.allow(following[0].after_commands + self.slack if following
                              else float("inf"))
            self.actions()[fault.kind](fault.downtime)
            self.record.injected[fault.kind] += 1
            self.record.fault_log.append(
                f"{fault.kind} after {after} commands "
                f"(down {fault.downtime}s, took {time.monotonic() - started:.1f}s)")

    def actions(self) -> dict[str, Callable[[float], None]]:
        """What each kind of fault does."""
        return {
            "kill_relay": lambda down: self.kill_and_restart("relay", down),
            "kill_projector": lambda down: self.kill_and_restart("projector", down),
            "flush_redis": lambda _down: self.chaos.flush_redis(),
            "restart_redis": self.restart_redis,
            "restart_postgres": self.restart_postgres,
        }

    def kill_and_restart(self, name: str, down: float) -> None:
        """SIGKILL a stream process, leave it dead a while, start it again."""
        self.chaos.kill(name)
        self.pause.wait(down)
        self.chaos.start(name)

    def restart_redis(self, down: float) -> None:
        """Stop Redis (losing everything), then start it on the same port."""
        self.chaos.stop_redis()
        self.pause.wait(down)
        self.chaos.start_redis()

    def restart_postgres(self, down: float) -> None:
        """Stop PostgreSQL (fast: sessions are cut), then start it again."""
        self.chaos.stop_postgres()
        self.pause.wait(down)
        self.chaos.start_postgres()


def drive(chaos: ChaosStack, config: ScenarioConfig,
          injector_class: type[Injector] = Injector) -> Record:
    """Run the traffic and the faults together; return when both are over."""
    record = Record()
    days = itertools.count()
    drivers_done = threading.Event()
    shares = [config.commands // config.workers + (1 if n < config.commands % config.workers
                                                   else 0) for n in range(config.workers)]
    drivers = [threading.Thread(target=Driver(chaos, config, n, record, days).run,
                                args=(share,), name=f"chaos-driver-{n}")
               for n, share in enumerate(shares)]
    injector = injector_class(chaos, plan_faults(config, injector_class.KINDS), record,
                              drivers_done)
    fault_thread = threading.Thread(target=injector.run, name="chaos-injector")
    for thread in [*drivers, fault_thread]:
        thread.start()
    for thread in drivers:
        thread.join()
    drivers_done.set()
    fault_thread.join()
    if injector.error is not None:
        raise RuntimeError("a fault could not be injected") from injector.error
    return record
