"""CSV import: all or nothing, every bad row reported, bulk written with its events."""

from __future__ import annotations

import io
import threading
import time
import uuid

from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.task_service.service_layer.csv_import import BATCH_ROWS
from testbed.tokens import TokenFactory


def upload(client: FlaskClient, tokens: TokenFactory, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    """POST a CSV body as text/csv."""
    return client.post("/upload-csv", data=body, headers={
        **tokens.headers(role="manager"), "Content-Type": "text/csv", **headers})


def tasks_and_events(engine: Engine) -> tuple[int, int]:
    """Counts of tasks and TaskCreated events."""
    with engine.connect() as connection:
        return (connection.execute(text("SELECT count(*) FROM task_manager")).scalar_one(),
                connection.execute(text(
                    "SELECT count(*) FROM events WHERE type = 'TaskCreated'")).scalar_one())


def test_import_creates_a_task_and_an_event_per_row(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Header-driven columns in any order; events match the single-create ones."""
    body = (b"priority,title,due_date,status,description\n"
            b'high,First,2025-01-02,in_progress,"multi\nline, quoted"\n'
            b",Second,,,\n")
    response = upload(client, tokens, body)
    assert (response.status_code, response.get_json()) == (201, {"imported": 2})
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT t.title, t.description, t.status, t.priority, t.due_date::text, t.version, "
            "e.data, e.seq FROM task_manager t JOIN events e ON e.task_id = t.id "
            "ORDER BY t.id")).all()
    assert [r[:6] for r in rows] == [
        ("First", "multi\nline, quoted", "in_progress", "high", "2025-01-02", 1),
        ("Second", None, "active", "medium", None, 1)]
    assert rows[0].data == {"title": "First", "description": "multi\nline, quoted",
                            "status": "in_progress", "priority": "high",
                            "due_date": "2025-01-02", "created_by": 1}
    assert [r.seq for r in rows] == [1, 2]


def test_imported_events_get_time_ordered_uuid7_ids_ascending_with_seq(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    body = b"title\n" + b"".join(b"Task %d\n" % n for n in range(300))
    before = int(time.time() * 1000)
    assert upload(client, tokens, body).status_code == 201
    with engine.connect() as connection:
        ids = [uuid.UUID(str(value)) for value in connection.execute(text(
            "SELECT event_id FROM events ORDER BY seq")).scalars()]
    assert len(set(ids)) == 300
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert before - 1000 <= ids[0].int >> 80 <= int(time.time() * 1000)  # ms timestamp


def test_a_bad_row_in_the_middle_of_10000_imports_nothing(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Row 5001 (spreadsheet numbering) has a bad status: 422 naming it, nothing stored."""
    lines = ["title,status"] + [f"task {i},active" for i in range(10_000)]
    lines[5000] = "task bad,finished"
    response = upload(client, tokens, ("\n".join(lines) + "\n").encode())
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "CSV validation failed"
    assert body["details"] == [{"row": 5001, "field": "status",
                                "message": "Must be one of: active, in_progress, completed, "
                                           "cancelled"}]
    assert tasks_and_events(engine) == (0, 0)
    good = ("\n".join(["title,status"] + [f"t{i},active" for i in range(10_000)]) + "\n")
    assert upload(client, tokens, good.encode()).get_json() == {"imported": 10_000}
    assert tasks_and_events(engine) == (10_000, 10_000)


def test_every_bad_row_is_reported(client: FlaskClient, tokens: TokenFactory) -> None:
    """Several problems: all listed with row and field."""
    body = b"title,priority,due_date\nok,low,\n,high,\nx,urgent,2025-02-30\n"
    details = upload(client, tokens, body).get_json()["details"]
    assert [(d["row"], d["field"]) for d in details] == [
        (3, "title"), (4, "priority"), (4, "due_date")]


def test_unknown_or_missing_columns_are_422(client: FlaskClient, tokens: TokenFactory) -> None:
    """Unknown column, or no title column."""
    unknown = upload(client, tokens, b"title,owner\na,b\n")
    assert unknown.status_code == 422
    assert unknown.get_json()["details"] == [
        {"row": 1, "field": "owner", "message": "Unknown column"}]
    assert upload(client, tokens, b"description\na\n").status_code == 422


def test_bom_and_formula_like_values_are_kept_as_text(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """A UTF-8 BOM is accepted; `=`, `+`, `-`, `@` values are stored exactly as sent."""
    body = "\ufefftitle,description\n=1+2,@SUM(A1)\n+cmd,-2\nÉté,naïve\n".encode()
    assert upload(client, tokens, body).get_json() == {"imported": 3}
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT title, description FROM task_manager ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("=1+2", "@SUM(A1)"), ("+cmd", "-2"), ("Été", "naïve")]


def test_latin1_binary_and_empty_files_are_refused(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Not UTF-8 → 400; not CSV → 400; empty → 422; nothing stored."""
    latin1 = upload(client, tokens, "title\nÉté\n".encode("latin-1"))
    assert (latin1.status_code, latin1.get_json()) == (
        400, {"error": "CSV file must be UTF-8 encoded"})
    assert upload(client, tokens, b"title\nab\x00c\n").status_code == 400
    empty = upload(client, tokens, b"")
    assert (empty.status_code, empty.get_json()["error"]) == (422, "CSV file is empty")
    assert upload(client, tokens, b"title\n").status_code == 422
    assert tasks_and_events(engine) == (0, 0)


def test_oversize_upload_is_413(make_app, tokens: TokenFactory, engine: Engine) -> None:
    """Past CSV_MAX_BYTES → 413 JSON, for a plain body and for multipart."""
    client = make_app(csv_max_bytes=1000).test_client()
    body = ("title\n" + "x" * 40 + "\n") * 100
    response = upload(client, tokens, body.encode())
    assert (response.status_code, response.get_json()) == (
        413, {"error": "Request body too large"})
    multipart = client.post("/upload-csv", data={"file": (io.BytesIO(body.encode()), "t.csv")},
                            headers=tokens.headers(), content_type="multipart/form-data")
    assert multipart.status_code == 413
    assert tasks_and_events(engine) == (0, 0)


def test_csv_over_the_row_limit_is_413_and_imports_nothing(
        make_app, tokens: TokenFactory, engine: Engine) -> None:
    client = make_app(csv_max_rows=5).test_client()
    at_limit = b"title\n" + b"".join(b"task %d\n" % n for n in range(5))
    over = at_limit + b"one too many\n"
    response = upload(client, tokens, over)
    assert (response.status_code, response.get_json()) == (
        413, {"error": "CSV file has more than 5 data rows"})
    assert tasks_and_events(engine) == (0, 0)
    assert upload(client, tokens, at_limit).get_json() == {"imported": 5}


def test_multipart_upload_and_duplicate_idempotency_key(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The `file` field works; a retried key imports nothing new and answers the same."""
    def send(content: bytes):  # type: ignore[no-untyped-def]
        return client.post("/upload-csv", data={"file": (io.BytesIO(content), "t.csv")},
                           headers={**tokens.headers(), "Idempotency-Key": "csv-1"},
                           content_type="multipart/form-data")

    assert send(b"title\na\nb\n").get_json() == {"imported": 2}
    again = send(b"title\na\nb\n")
    assert (again.status_code, again.get_json()) == (201, {"imported": 2})
    assert tasks_and_events(engine) == (2, 2)
    assert send(b"title\nc\n").status_code == 422
    missing = client.post("/upload-csv", data={"other": (io.BytesIO(b"title\na\n"), "t.csv")},
                          headers=tokens.headers(), content_type="multipart/form-data")
    assert missing.status_code == 400


def test_a_bad_row_after_batches_were_written_imports_nothing(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The batches before the first bad row are written while the file is still parsed;
    the refusal rolls them back: 422, nothing stored (the task ids they drew are spent)."""
    lines = ["title"] + [f"task {i}" for i in range(BATCH_ROWS * 2 + 10)]
    lines[BATCH_ROWS * 2 + 5] = " "
    response = upload(client, tokens, ("\n".join(lines) + "\n").encode())
    assert (response.status_code, response.get_json()["details"]) == (422, [
        {"row": BATCH_ROWS * 2 + 6, "field": "title", "message": "Title is required"}])
    assert tasks_and_events(engine) == (0, 0)
    with engine.connect() as connection:
        drawn = connection.execute(text(
            "SELECT last_value FROM pg_sequences WHERE sequencename = 'task_manager_id_seq'"
        )).scalar_one()
    assert drawn >= BATCH_ROWS * 2  # two batches went in before the refusal


def test_an_import_whose_connection_is_cut_mid_file_stores_nothing_and_stops_parsing(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """The server ends the import's session while batches flow: the request fails as an
    outage (503, retry), nothing is committed, and the parsing thread does not linger."""
    body = b"title\n" + b"".join(b"task %d\n" % n for n in range(BATCH_ROWS * 40))
    cut: list[int] = []

    def cut_the_import() -> None:
        deadline = time.monotonic() + 60
        with engine.connect() as connection:
            while not cut and time.monotonic() < deadline:
                cut.extend(connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'INSERT INTO task_manager%csv_batch%' "
                    "AND pid <> pg_backend_pid()")).scalars())
                connection.commit()

    killer = threading.Thread(target=cut_the_import)
    killer.start()
    response = upload(client, tokens, body)
    killer.join()
    assert cut, "the import ended before its session could be cut"
    assert response.status_code == 503, response.get_data(as_text=True)
    assert tasks_and_events(engine) == (0, 0)
    assert not [t for t in threading.enumerate() if t.name == "csv-parse"]
    assert upload(client, tokens, b"title\nafter\n").get_json() == {"imported": 1}
