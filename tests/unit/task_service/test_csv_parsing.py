"""CSV parsing and validation, on in-memory streams."""

from __future__ import annotations

import io

import pytest

from services.task_service.adapters.bulk_import import copy_text
from services.task_service.service_layer.csv_import import (
    BATCH_ROWS,
    CsvBatches,
    CsvRejected,
    parse_rows,
)
from services.task_service.service_layer.idempotency import fingerprint_of


def parsed(body: bytes, max_rows: int | None = None) -> tuple[list[bytes], int]:
    """The COPY batches of a body, parsed on the parsing thread, and its row count (a COPY
    line per row: newlines inside values are escaped)."""
    with CsvBatches(io.BytesIO(body), max_rows) as batches:
        found = list(batches)
    return found, b"".join(found).count(b"\n")


def rejected(body: bytes) -> CsvRejected:
    """The rejection of a body."""
    with pytest.raises(CsvRejected) as caught:
        parsed(body)
    return caught.value


def test_valid_rows_become_copy_lines_with_escapes_and_nulls() -> None:
    """Rows are numbered 1..N; tabs, backslashes and newlines are escaped; empty → NULL ('')."""
    batches, rows = parsed(b'title,description\n\n"a\tb","x\\y\nz"\nc,\n')
    assert rows == 2
    assert b"".join(batches).decode().splitlines() == [
        "1\ta\\tb\tx\\\\y\\nz\tactive\tmedium\t", "2\tc\t\tactive\tmedium\t"]


@pytest.mark.parametrize("special", ["\t", "\n", "\r", "\\"])
def test_a_batch_with_one_special_character_is_escaped_whole(special: str) -> None:
    """The unescaped fast path is taken only when no cell holds a character COPY escapes."""
    rows = [(1, "plain", None, "active", "medium", "2030-01-01"),
            (2, f"odd{special}one", "d", "active", "high", None)]
    escaped = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}[special]
    assert copy_text(rows).split("\n") == [
        "1\tplain\t\tactive\tmedium\t2030-01-01", f"2\todd{escaped}one\td\tactive\thigh\t", ""]


def test_row_numbers_follow_the_spreadsheet_and_every_problem_is_listed() -> None:
    """Header is row 1; a wrong field count is reported too."""
    error = rejected(b"title,status\nok,active\nbad,nope\n\nx,active,extra\n")
    assert (error.status, error.message) == (422, "CSV validation failed")
    assert [(d["row"], d["field"]) for d in error.details] == [(3, "status"), (5, None)]


def test_the_digest_depends_on_the_bytes_and_leaves_the_upload_at_its_start() -> None:
    """Same file, same fingerprint; another file, another; the parse then reads it all."""
    upload = io.BytesIO(b"title\na\n")
    one = fingerprint_of(upload)
    assert upload.tell() == 0 and one == fingerprint_of(io.BytesIO(b"title\na\n"))
    assert one != fingerprint_of(io.BytesIO(b"title\nb\n"))


def test_encoding_and_shape_errors() -> None:
    """Latin-1 → 400, NUL → 400, empty or header-only → 422, BOM accepted."""
    assert rejected("title\nÉ\n".encode("latin-1")).status == 400
    assert rejected(b"title\n\x00\n").status == 400
    assert rejected(b"").message == "CSV file is empty"
    assert rejected(b"\xef\xbb\xbf").message == "CSV file is empty"
    assert rejected(b"title\n").status == 422
    assert parsed(b"\xef\xbb\xbfTitle\nx\n")[1] == 1


def test_rows_past_the_limit_stop_the_parse_before_the_end_of_the_file() -> None:
    """Blank lines are not rows; the first data row past the limit is a 413 at once."""
    assert parsed(b"title\na\n\n\nb\n", max_rows=2)[1] == 2
    source = io.BytesIO(b"title\n" + b"row\n" * 1_000_000)
    with pytest.raises(CsvRejected) as caught, CsvBatches(source, max_rows=2) as batches:
        list(batches)
    assert (caught.value.status, caught.value.message) == (
        413, "CSV file has more than 2 data rows")
    assert source.tell() < 1_000_000  # read one buffer or so, not the whole upload


def test_rows_come_in_batches_and_a_refused_file_raises_after_its_last_valid_one() -> None:
    """The valid rows before the first bad one may already be out (the writer rolls them
    back); the rejection comes when the reader reaches the end, listing every problem."""
    body = b"title\n" + b"ok\n" * (BATCH_ROWS + 5) + b" \n" + b"ok\n" * 3
    seen = []
    with pytest.raises(CsvRejected) as caught, CsvBatches(io.BytesIO(body)) as batches:
        for batch in batches:
            seen.append(batch.count(b"\n"))
    assert seen == [BATCH_ROWS]
    assert caught.value.details == [
        {"row": BATCH_ROWS + 7, "field": "title", "message": "Title is required"}]


def test_a_reader_that_stops_early_stops_the_parsing_thread() -> None:
    """Leaving the batches before their end (the database failed) ends the thread, which
    was waiting to hand over more; nothing is left running."""
    body = b"title\n" + b"row\n" * (BATCH_ROWS * 20)
    with CsvBatches(io.BytesIO(body)) as batches:
        next(iter(batches))
    assert not batches._thread.is_alive()


def test_parse_rows_hands_over_every_batch_in_order() -> None:
    """On the caller's thread too: rows numbered 1..N across batches."""
    out: list[bytes] = []
    count = parse_rows(io.BytesIO(b"title\n" + b"x\n" * (BATCH_ROWS + 1)), 10**9, out.append)
    lines = b"".join(out).decode().splitlines()
    assert count == BATCH_ROWS + 1 == len(lines) and len(out) == 2
    assert [line.split("\t")[0] for line in lines[BATCH_ROWS - 1:]] == [
        str(BATCH_ROWS), str(BATCH_ROWS + 1)]



def test_the_outcome_of_a_parse_nobody_reads_any_more_is_dropped_quietly() -> None:
    """The reader left (the database failed) before the parse ended: handing over the
    outcome, here a refusal, gives up without raising, so the thread ends without an
    uncaught exception (run on this thread, so that the timing cannot hide it)."""
    batches = CsvBatches(io.BytesIO(b"title\n \n"))
    batches._stop.set()
    batches._parse()
    assert batches._queue.empty()
