"""CSV import over HTTP: `POST /upload-csv`."""

from __future__ import annotations

import shutil
import tempfile
from typing import IO

from flask import request

from services.task_service.api.deps import deps
from services.task_service.api.request_context import command_context, idempotent_request
from services.task_service.api.schemas import ImportSchema
from services.task_service.service_layer.csv_import import import_csv
from shared.auth import requires
from shared.errors import ApiError
from shared.headers import response_headers
from shared.http import Blueprint, documents_errors, permission_doc
from shared.positions import position_headers

blp = Blueprint("imports", __name__, description="Bulk import of tasks from CSV")

MISSING_FILE = "Send the CSV as the multipart field 'file' or as a text/csv body"
CSV_EXAMPLE = ("title,status,priority,due_date,description\n"
               "Write the quarterly report,active,high,2025-04-30,Figures from finance\n"
               "Book the venue,in_progress,medium,,\n")


SPOOL_BYTES = 1024 * 1024  # a body received into memory up to this size, past it to disk


def received_upload() -> IO[bytes]:
    """The uploaded bytes, received whole (413 past the configured size) before the import
    opens its transaction, so that a slow client never holds a connection: a multipart
    form's file as the form parser stored it, a plain body copied to a temporary file."""
    request.max_content_length = deps().settings.csv_max_bytes
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, MISSING_FILE)
        return upload.stream  # type: ignore[return-value]
    received = tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115 - closed by the caller
    shutil.copyfileobj(request.stream, received, 1 << 16)
    received.seek(0)
    return received  # type: ignore[return-value]


@blp.route("/upload-csv", methods=["POST"])
@blp.request_headers("Idempotency-Key")
@blp.doc(**permission_doc("task:import"), requestBody={
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"},
                                     "example": CSV_EXAMPLE},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "properties": {"file": {
                "type": "string", "format": "binary", "description": "The CSV file"}},
        }},
    },
})
@documents_errors(blp, 400, 401, 403, 413, 422)
@requires("task:import")
@blp.response(201, ImportSchema, description="How many tasks were created",
              headers=response_headers("X-Event-Seq"))
def upload_csv() -> tuple[dict[str, int], int, dict[str, str]]:
    """Import tasks from a CSV file, all or nothing (`title` column required).

    Send the file as the multipart field `file`, or as the whole body (its `Content-Type`
    `text/csv` or `application/octet-stream`). At most `CSV_MAX_BYTES` and `CSV_MAX_ROWS`
    data rows (413 past either); any bad row is a 422 listing every problem.
    """
    source = received_upload()
    try:
        done = import_csv(deps().uow(), source, command_context(),
                          idempotent_request(source),
                          max_rows=deps().settings.csv_max_rows)
    finally:
        source.close()
    return done.body, 201, position_headers(done.position)
