"""Entity tags of versioned resources: a task's `ETag` is its version, quoted; a read whose
`If-None-Match` names it is answered `304 Not Modified`."""

from __future__ import annotations

from typing import Any

from flask import Response, request


def etag(version: int) -> str:
    """The `ETag` of a version: `"3"`."""
    return f'"{version}"'


def tags_in(header: str) -> list[str]:
    """The entity tags an `If-Match`/`If-None-Match` value lists, unquoted (`W/` dropped)."""
    return [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()]


def not_modified(version: int) -> bool:
    """True when the request's `If-None-Match` names this version (or is `*`)."""
    tags = tags_in(request.headers.get("If-None-Match", ""))
    return "*" in tags or str(version) in tags


def versioned(body: Any, version: int) -> tuple[Any, int, dict[str, str]] | Response:
    """A read of one version of a resource: the body with its `ETag`, or a bare 304 when the
    client already holds that version."""
    headers = {"ETag": etag(version)}
    if not_modified(version):
        return Response(status=304, headers=headers)
    return body, 200, headers
