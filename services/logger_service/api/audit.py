"""The audit trail: `GET /audit?task_id=` (every status change, who and when)."""

from __future__ import annotations

from typing import Any

from services.logger_service.api.deps import deps
from services.logger_service.api.pagination import pagination_headers
from services.logger_service.api.schemas import AuditEntrySchema, AuditQuery
from services.logger_service.service_layer import queries
from shared.auth import requires
from shared.headers import response_headers
from shared.http import documents_errors, permission_doc
from shared.query_strings import QueryBlueprint

blp = QueryBlueprint("audit", __name__, description="Audit trail of status changes")


@blp.route("/audit", methods=["GET"])
@requires("audit:read")
@blp.doc(**permission_doc("audit:read"))
@blp.arguments(AuditQuery(), location="query", as_kwargs=True)
@blp.response(200, AuditEntrySchema(many=True),
              headers=response_headers("X-Total-Count", "Link"))
@documents_errors(blp, 400, 401, 403)
def list_audit(page: int, per_page: int, task_id: int | None = None,
               min_seq: int | None = None) -> Any:
    """List status changes, oldest first, optionally of one task."""
    deps().applied.wait_for(min_seq)
    result = queries.list_audit(deps().reader, task_id, page, per_page)
    return result.items, pagination_headers(result)
