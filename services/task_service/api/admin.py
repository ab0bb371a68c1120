"""Operations over HTTP: `POST /admin/transfer`."""

from __future__ import annotations

from typing import Any

from services.task_service.api.deps import deps
from services.task_service.api.request_context import command_context
from services.task_service.api.schemas import TransferRequestSchema, TransferSchema
from services.task_service.service_layer.transfer import request_transfer, today_in
from shared.auth import requires
from shared.headers import response_headers
from shared.http import Blueprint, documents_errors, permission_doc
from shared.positions import position_headers

blp = Blueprint("admin", __name__, description="Operations")


@blp.route("/admin/transfer", methods=["POST"])
@blp.doc(**permission_doc("ops:transfer"))
@documents_errors(blp, 400, 401, 403, 422)
@requires("ops:transfer")
@blp.arguments(TransferRequestSchema())
@blp.response(202, TransferSchema, description="The date and the id of this request's own event",
              headers=response_headers("X-Event-Seq"))
def transfer(args: dict[str, Any]) -> tuple[dict[str, str], int, dict[str, str]]:
    """Request the daily transfer now (default today); a repeat adds the tasks active since."""
    settings = deps().settings
    day = args.get("date") or today_in(settings.transfer_timezone)
    requested = request_transfer(deps().uow(), day, command_context())
    body = {"date": requested.date.isoformat(), "event_id": requested.event_id}
    return body, 202, position_headers(requested.position)
