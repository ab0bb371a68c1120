"""After the chaos: wait until the pipeline is quiet, then count what was lost or duplicated.

The oracle is the event store itself: the expected projections are a fold of the stored
events (the documented meaning of each type, docs/events.md), computed here independently of
the projector's code, and compared with the tables the projector actually wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import text

from services.logger_service.adapters.partition_positions import PartitionedPosition
from shared.stream.partitions import Partitioning
from testbed.processes import ChaosStack
from tests.chaos.scenario import CommandResult

PROJECTION = "logger"
GROUP = "logger"
TRANSFERABLE = ("active", "in_progress")
LOGGED = ("title", "description", "status", "priority")


@dataclass(frozen=True)
class StoredEvent:
    """One row of the event store."""

    seq: int
    event_id: str
    task_id: int | None
    version: int | None
    type: str
    data: dict[str, Any]
    correlation_id: str | None
    occurred_at: dt.datetime


@dataclass
class Findings:
    """Everything the checks counted; a clean run has zeros in every problem field."""

    events: int = 0
    stream_entries: int = 0
    checkpoint: int = 0
    lost_commands: list[str] = field(default_factory=list)
    missing_in_stream: int = 0
    duplicated_in_stream: int = 0
    foreign_in_stream: int = 0
    missing_in_projection: int = 0
    duplicated_in_projection: int = 0
    mismatched_in_projection: list[str] = field(default_factory=list)
    task_manager_mismatches: list[str] = field(default_factory=list)
    dead_letters: int = 0
    committed_without_2xx: int = 0
    server_errors: list[str] = field(default_factory=list)  # a 500: never, whatever fails
    verify: str = "not run"

    @property
    def lost(self) -> int:
        """Accepted commands without their events, events missing downstream."""
        return (len(self.lost_commands) + self.missing_in_stream + self.missing_in_projection
                + self.dead_letters)

    @property
    def duplicated(self) -> int:
        """Events held twice: in the stream, or applied twice to the projections."""
        return self.duplicated_in_stream + self.duplicated_in_projection

    def problems(self) -> list[str]:
        """Human-readable list of everything that is wrong (empty when all is well)."""
        found = [f"lost command: {c}" for c in self.lost_commands[:20]]
        found += [f"projection: {m}" for m in self.mismatched_in_projection[:20]]
        found += [f"task_manager vs task_state: {m}" for m in self.task_manager_mismatches[:20]]
        found += [f"answered 500: {e}" for e in self.server_errors[:20]]
        for name in ("missing_in_stream", "duplicated_in_stream", "foreign_in_stream",
                     "missing_in_projection", "duplicated_in_projection", "dead_letters"):
            if getattr(self, name):
                found.append(f"{name}: {getattr(self, name)}")
        if self.checkpoint != self.events:
            found.append(f"checkpoint {self.checkpoint} != store head {self.events}")
        if self.verify.startswith("FAILED"):
            found.append(f"projections verify: {self.verify}")
        return found


# -- quiescence -------------------------------------------------------------------------------


def partitioning(chaos: ChaosStack) -> Partitioning:
    """How the stack's log is split (`STREAM_PARTITIONS`)."""
    return Partitioning(int(chaos.env.get("STREAM_PARTITIONS", "1")))


def consumed_streams(chaos: ChaosStack) -> list[str]:
    """The streams the projector reads: the whole log's, or every partition's."""
    return partitioning(chaos).streams(chaos.namespace, chaos.stream_key)


def applied(chaos: ChaosStack) -> int:
    """The position of the whole log the projections have applied (every partition's)."""
    if not partitioning(chaos).partitioned:
        return chaos.scalar("logger", "SELECT coalesce(max(last_seq), 0) FROM "
                            f"projection_checkpoints WHERE name = '{PROJECTION}'")
    client = chaos.redis()
    try:
        return PartitionedPosition(chaos.engine("logger"), client, partitioning(chaos),
                                   consumed_streams(chaos), PROJECTION)()
    finally:
        client.close()


def positions(chaos: ChaosStack) -> dict[str, int]:
    """Store head, stream head and length, checkpoint, pending entries, relay lag."""
    client = chaos.redis()
    try:
        info = client.xinfo_stream(chaos.stream_key)
        counts = []  # each consumed stream's pending entries; -1 where the group is missing
        for stream in consumed_streams(chaos):
            groups = {_text(g["name"]): g for g in client.xinfo_groups(stream)}
            counts.append(int(groups[GROUP]["pending"]) if GROUP in groups else -1)
        pending = -1 if -1 in counts else sum(counts)
        lag = client.hget(f"{chaos.namespace}:relay:status", "lag")
    finally:
        client.close()
    return {
        "store_head": chaos.scalar("tasks", "SELECT coalesce(max(seq), 0) FROM events"),
        "stream_head": int(_text(info["last-generated-id"]).split("-")[0]),
        "stream_length": int(info["length"]),
        "checkpoint": applied(chaos),
        "pending": pending,
        "relay_lag": int(lag) if lag is not None else -1,
    }


def quiet(found: dict[str, int]) -> bool:
    """Everything stored is on the stream and applied, nothing pending, relay caught up."""
    head = found["store_head"]
    return (found["stream_head"] == found["stream_length"] == found["checkpoint"] == head
            and found["pending"] == 0 and found["relay_lag"] == 0)


def wait_for_quiescence(chaos: ChaosStack, timeout: float) -> dict[str, int]:
    """Poll the positions until the pipeline is quiet; raise with the last ones otherwise."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] | str = "nothing read yet"
    while time.monotonic() < deadline:
        chaos.ensure_running()
        try:
            last = positions(chaos)
            if quiet(last):
                return last
        except (redis.RedisError, OSError, KeyError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # PostgreSQL still coming back
            last = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        time.sleep(0.25)
    raise TimeoutError(f"the pipeline did not go quiet in {timeout}s; last positions: {last}")


# -- reading everything -----------------------------------------------------------------------


def stored_events(chaos: ChaosStack) -> list[StoredEvent]:
    """The whole event store, in seq order."""
    with chaos.engine("tasks").connect() as connection:
        rows = connection.execute(text(
            "SELECT seq, event_id::text, task_id, version, type, data, "
            "metadata->>'correlation_id', occurred_at FROM events ORDER BY seq")).all()
    return [StoredEvent(*row) for row in rows]


def stream_entries(chaos: ChaosStack) -> list[tuple[str, dict[str, Any]]]:
    """The whole stream: (entry id, decoded envelope)."""
    client, found, start = chaos.redis(), [], "-"
    try:
        while True:
            chunk = client.xrange(chaos.stream_key, start, "+", count=5000)
            found += [(_text(entry_id), json.loads(fields[b"event"]))
                      for entry_id, fields in chunk]
            if len(chunk) < 5000:
                return found
            start = "(" + _text(chunk[-1][0])
    finally:
        client.close()


def table(chaos: ChaosStack, service: str, sql: str) -> list[dict[str, Any]]:
    """Rows of one query as dicts."""
    with chaos.engine(service).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql))]


# -- the checks -------------------------------------------------------------------------------


def check_commands(results: Iterable[CommandResult], events: list[StoredEvent],
                   findings: Findings) -> None:
    """Every accepted command has exactly the events it should have in the store."""
    by_request: dict[str, list[StoredEvent]] = {}
    for event in events:
        by_request.setdefault(event.correlation_id or "", []).append(event)
    by_id = {event.event_id: event for event in events}
    for result in results:
        mine = by_request.get(result.request_id, [])
        if result.status == 500:  # an outage is a 503 (or 502/504 from the gateway)
            findings.server_errors.append(f"{result.kind} {result.request_id}: {result.body}")
        if not result.accepted:
            findings.committed_without_2xx += bool(mine)
            continue
        problem = _command_problem(result, mine, by_id)
        if problem:
            findings.lost_commands.append(f"{result.kind} {result.request_id}: {problem}")


def _command_problem(result: CommandResult, mine: list[StoredEvent],
                     by_id: dict[str, StoredEvent]) -> str | None:
    types = [event.type for event in mine]
    if result.kind == "create":
        if types != ["TaskCreated"] or mine[0].task_id != result.body["id"]:
            return f"expected one TaskCreated of task {result.body['id']}, found {types}"
    elif result.kind == "update":
        versions = [event.version for event in mine if event.task_id == result.task_id]
        if not versions or max(v or 0 for v in versions) != result.body["version"]:
            return f"expected events up to version {result.body['version']}, found {types}"
    elif result.kind == "delete":
        if types not in (["TaskSoftDeleted"], ["TaskPurged"]):
            return f"expected one delete event, found {types}"
    elif result.kind == "import_csv":
        if types.count("TaskCreated") != result.rows or result.body["imported"] != result.rows:
            return f"sent {result.rows} rows, found {types.count('TaskCreated')} TaskCreated"
    elif result.kind == "transfer":
        event = by_id.get(str(result.body["event_id"]))
        if event is None or event.data.get("date") != result.day:
            return f"no DailyTransferRequested {result.body['event_id']} for {result.day}"
    return None


def check_stream(entries: list[tuple[str, dict[str, Any]]], events: list[StoredEvent],
                 findings: Findings) -> None:
    """The stream holds seq 1..N once each, in order, with the stored events' ids."""
    findings.stream_entries = len(entries)
    if [event.seq for event in events] != list(range(1, len(events) + 1)):
        findings.mismatched_in_projection.append("the store's seqs are not 1..N")
    seqs = [int(entry_id.split("-")[0]) for entry_id, _ in entries]
    counts = Counter(seqs)
    findings.duplicated_in_stream = sum(n - 1 for n in counts.values())
    expected = {event.seq: event.event_id for event in events}
    findings.missing_in_stream = len(set(expected) - set(counts))
    findings.foreign_in_stream = sum(
        1 for entry_id, payload in entries
        if expected.get(int(entry_id.split("-")[0])) != payload.get("event_id")
        or payload.get("seq") != int(entry_id.split("-")[0]))
    if seqs != sorted(seqs):
        findings.mismatched_in_projection.append("stream entries are out of seq order")


def fold(events: list[StoredEvent]) -> tuple[dict[int, dict[str, Any]],
                                             dict[tuple[int, dt.date], dict[str, Any]],
                                             dict[str, tuple[Any, ...]]]:
    """The projections the events describe: task replica, TaskLogger rows, audit entries."""
    state: dict[int, dict[str, Any]] = {}
    logged: dict[tuple[int, dt.date], dict[str, Any]] = {}
    audit: dict[str, tuple[Any, ...]] = {}
    for event in events:
        _fold_one(event, state, logged, audit)
    return state, logged, audit


def _fold_one(event: StoredEvent, state: dict[int, dict[str, Any]],
              logged: dict[tuple[int, dt.date], dict[str, Any]],
              audit: dict[str, tuple[Any, ...]]) -> None:
    task_id, data = event.task_id, event.data
    if event.type == "DailyTransferRequested":
        day = dt.date.fromisoformat(data["date"])
        for tid, task in state.items():
            if not task["deleted"] and task["status"] in TRANSFERABLE:
                logged.setdefault((tid, day), {k: task[k] for k in LOGGED}
                                  | {"transferred_at": event.occurred_at})
        return
    assert task_id is not None
    if event.type == "TaskCreated":
        state[task_id] = {"title": data["title"], "description": data.get("description"),
                          "status": data.get("status", "active"),
                          "priority": data.get("priority", "medium"),
                          "due_date": _date(data.get("due_date")), "deleted": False,
                          "version": event.version, "updated_at": event.occurred_at,
                          "created_by": data.get("created_by"),
                          "created_at": event.occurred_at}
        return
    if task_id not in state:
        return
    if event.type in ("TaskPurged", "TaskSoftDeleted"):  # both take its days out of the log
        for key in [key for key in logged if key[0] == task_id]:
            del logged[key]
    if event.type == "TaskPurged":
        del state[task_id]
        for key in [key for key, row in audit.items() if row[0] == task_id]:
            del audit[key]
        return
    task = state[task_id]
    task["updated_at"] = event.occurred_at
    if event.type == "TaskSoftDeleted":
        task["deleted"] = True
        return
    changes = dict(data.get("changes") or {})
    if event.type == "TaskStatusChanged":
        changes = {"status": data["new_status"]}
        if data["new_status"] != task["status"]:
            audit[event.event_id] = (task_id, task["status"], data["new_status"])
    if "due_date" in changes:
        changes["due_date"] = _date(changes["due_date"])
    task.update(changes, version=event.version)
    row = logged.get((task_id, event.occurred_at.astimezone(dt.UTC).date()))
    if row is not None:
        row.update({k: v for k, v in changes.items() if k in LOGGED})


def check_projections(chaos: ChaosStack, events: list[StoredEvent], findings: Findings) -> None:
    """task_state, task_logger and audit_log equal the fold of the store, row for row."""
    state, logged, audit = fold(events)
    _compare_rows("task_state", {row.pop("task_id"): row for row in table(
        chaos, "logger", "SELECT task_id, title, description, status, priority, due_date, "
        "deleted, version, updated_at, created_by, created_at FROM task_state")}, state,
        findings)
    log_rows = table(chaos, "logger", "SELECT task_id, date, title, description, status, "
                     "priority, transferred_at FROM task_logger")
    keys = Counter((row["task_id"], row["date"]) for row in log_rows)
    findings.duplicated_in_projection += sum(n - 1 for n in keys.values())
    _compare_rows("task_logger", {(row.pop("task_id"), row.pop("date")): row
                                  for row in log_rows}, logged, findings)
    audit_rows = table(chaos, "logger", "SELECT event_id, task_id, previous_status, new_status "
                       "FROM audit_log")
    findings.duplicated_in_projection += len(audit_rows) - len({r["event_id"] for r in audit_rows})
    _compare_rows("audit_log", {row["event_id"]: (row["task_id"], row["previous_status"],
                                                  row["new_status"]) for row in audit_rows},
                  audit, findings)


def _compare_rows(name: str, actual: dict[Any, Any], expected: dict[Any, Any],
                  findings: Findings) -> None:
    missing = set(expected) - set(actual)
    extra = set(actual) - set(expected)
    findings.missing_in_projection += len(missing)
    findings.duplicated_in_projection += len(extra)
    findings.mismatched_in_projection += [f"{name} {key}: missing" for key in sorted(
        missing, key=str)[:5]] + [f"{name} {key}: not expected" for key in sorted(
            extra, key=str)[:5]]
    for key in sorted(set(actual) & set(expected), key=str):
        if actual[key] != expected[key]:
            findings.mismatched_in_projection.append(
                f"{name} {key}: {actual[key]} != folded {expected[key]}")


def check_task_manager(chaos: ChaosStack, findings: Findings) -> None:
    """The task service's task_manager and the logger's replica agree on every task."""
    managed = {row.pop("id"): row for row in table(
        chaos, "tasks", "SELECT id, title, description, status, priority, due_date, version, "
        "created_by, created_at, deleted_at IS NOT NULL AS deleted FROM task_manager")}
    replica = {row.pop("task_id"): row for row in table(
        chaos, "logger", "SELECT task_id, title, description, status, priority, due_date, "
        "version, created_by, created_at, deleted FROM task_state")}
    for task_id in sorted(set(managed) | set(replica)):
        mine, theirs = managed.get(task_id), replica.get(task_id)
        if mine is not None and theirs is not None and mine["deleted"] and theirs["deleted"]:
            mine.pop("version"), theirs.pop("version")  # a soft delete does not count there
        if mine != theirs:
            findings.task_manager_mismatches.append(f"task {task_id}: {mine} != {theirs}")


def check_dead_letters(chaos: ChaosStack, findings: Findings) -> None:
    """Nothing was given up on."""
    client = chaos.redis()
    try:
        findings.dead_letters = sum(int(client.xlen(f"{stream}:dead"))
                                    for stream in {chaos.stream_key, *consumed_streams(chaos)})
    finally:
        client.close()


def run_verify(chaos: ChaosStack, findings: Findings) -> None:
    """`taskstream projections verify`, when the logger service has it."""
    done = chaos.run_cli("projections", "verify", timeout=300)
    if "No such command" in done.stderr:
        findings.verify = "not available (compared task_manager with task_state instead)"
    elif done.returncode == 0:
        findings.verify = "passed"
    else:
        findings.verify = f"FAILED (exit {done.returncode}): {(done.stdout + done.stderr)[-800:]}"


def check_everything(chaos: ChaosStack, results: list[CommandResult]) -> Findings:
    """Run every check on a quiet pipeline."""
    events = stored_events(chaos)
    findings = Findings(events=len(events))
    findings.checkpoint = applied(chaos)
    check_commands(results, events, findings)
    check_stream(stream_entries(chaos), events, findings)
    check_projections(chaos, events, findings)
    check_task_manager(chaos, findings)
    check_dead_letters(chaos, findings)
    run_verify(chaos, findings)
    return findings


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
