"""CSV parsing and validation, on in-memory streams."""

from __future__ import annotations

import io

import pytest

from services.task_service.adapters.bulk_import import copy_text
from services.task_service.service_layer.csv_import import CsvRejected, parse_csv


def rejected(body: bytes) -> CsvRejected:
    """The rejection of a body."""
    with pytest.raises(CsvRejected) as caught:
        parse_csv(io.BytesIO(body))
    return caught.value


def test_valid_rows_become_copy_lines_with_escapes_and_nulls() -> None:
    """Rows are numbered 1..N; tabs, backslashes and newlines are escaped; empty → NULL ('')."""
    parsed = parse_csv(io.BytesIO(b'title,description\n\n"a\tb","x\\y\nz"\nc,\n'))
    assert parsed.rows == 2
    assert parsed.copy_file.read().decode().splitlines() == [
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


def test_the_digest_depends_on_the_bytes() -> None:
    """Same file, same fingerprint; another file, another."""
    one = parse_csv(io.BytesIO(b"title\na\n")).fingerprint
    assert one == parse_csv(io.BytesIO(b"title\na\n")).fingerprint
    assert one != parse_csv(io.BytesIO(b"title\nb\n")).fingerprint


def test_encoding_and_shape_errors() -> None:
    """Latin-1 → 400, NUL → 400, empty or header-only → 422, BOM accepted."""
    assert rejected("title\nÉ\n".encode("latin-1")).status == 400
    assert rejected(b"title\n\x00\n").status == 400
    assert rejected(b"").message == "CSV file is empty"
    assert rejected(b"\xef\xbb\xbf").message == "CSV file is empty"
    assert rejected(b"title\n").status == 422
    assert parse_csv(io.BytesIO(b"\xef\xbb\xbfTitle\nx\n")).rows == 1


def test_rows_past_the_limit_stop_the_parse_before_the_end_of_the_file() -> None:
    """Blank lines are not rows; the first data row past the limit is a 413 at once."""
    assert parse_csv(io.BytesIO(b"title\na\n\n\nb\n"), max_rows=2).rows == 2
    source = io.BytesIO(b"title\n" + b"row\n" * 1_000_000)
    with pytest.raises(CsvRejected) as caught:
        parse_csv(source, max_rows=2)
    assert (caught.value.status, caught.value.message) == (
        413, "CSV file has more than 2 data rows")
    assert source.tell() < 1_000_000  # read one buffer or so, not the whole upload
