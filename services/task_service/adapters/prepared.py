"""Statements every command runs, prepared once per database connection.

Planning the numbering step or the one-statement create took as long as running it (about
0.3 to 0.6 ms each on the two-core machine of docs/benchmarks.md), so they are sent as
`EXECUTE name(…)` of a statement prepared on the connection the first time it is used. A
prepared statement lives as long as its server session (a rollback does not drop it), and a
connection lost or replaced comes with a fresh pool record, so `info` of the pool record
says truthfully which are prepared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAMETER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Prepared:
    """A statement written with psycopg2's `%(name)s` parameters, and their SQL types."""

    name: str
    types: dict[str, str]  # parameter name → SQL type, in the order of the $n
    body: str

    def definition(self) -> str:
        """The `PREPARE` of the statement, its parameters as `$1, $2, …`."""
        order = {name: n for n, name in enumerate(self.types, start=1)}
        body = _PARAMETER.sub(lambda found: f"${order[found.group(1)]}", self.body)
        return f"PREPARE {self.name}({', '.join(self.types.values())}) AS {body}"

    def call(self) -> str:
        """`EXECUTE` of the statement, in psycopg2's parameter style."""
        return f"EXECUTE {self.name}({', '.join(f'%({name})s' for name in self.types)})"


def prepare(info: dict[str, Any], cursor: Any, *statements: Prepared) -> None:
    """Prepare those of `statements` not yet prepared on the connection whose pool record's
    `info` this is (`cursor` one of its cursors)."""
    done: set[str] = info.setdefault("taskstream.prepared", set())
    missing = [statement for statement in statements if statement.name not in done]
    if missing:
        cursor.execute("; ".join(statement.definition() for statement in missing))
        done.update(statement.name for statement in missing)
