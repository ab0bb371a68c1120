"""`taskstream dead-letters list | retry ID | drop ID`: the events the projector gave up on,
per partition of the log (`--partition`) and in total."""

from __future__ import annotations

import json

import click

from services.logger_service.adapters.dead_letters import DeadLetter
from services.logger_service.entrypoints.operations import PARTITION_OPTION, operations
from services.logger_service.service_layer import dead_letters as letters
from shared.events import decode


@click.group("dead-letters")
def dead_letters() -> None:
    """List, retry or drop events the projector gave up on."""


def _global_seq(letter: DeadLetter) -> int:
    """The event's seq in the whole log (its position when the payload cannot be read)."""
    try:
        return decode(letter.payload).seq
    except ValueError:
        return letter.seq


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@PARTITION_OPTION
def list_letters(as_json: bool, partition: int | None) -> None:
    """Print each dead letter: entry, seq, type, deliveries, error (and, in a partitioned
    log, its partition and position there)."""
    with operations() as ops:
        split = ops.partitioning.partitioned
        found = [(p, letter) for p, _ in ops.partitions(partition)
                 for letter in letters.list_dead_letters(ops.dead_letters(p))]
    for p, letter in found:
        seq = _global_seq(letter) if split else letter.seq
        where = {"partition": p, "position": letter.seq} if split else {}
        if as_json:
            click.echo(json.dumps({
                "entry": letter.entry_id, "seq": seq, "type": letter.type,
                "deliveries": letter.deliveries, "error": letter.error, "group": letter.group,
                **where}))
        else:
            at = f"partition {p} position {letter.seq}  " if split else ""
            click.echo(f"{letter.entry_id}  {at}seq {seq}  {letter.type}  "
                       f"deliveries {letter.deliveries}  {letter.error}")
    if not as_json:
        click.echo(f"{len(found)} dead letters")


@dead_letters.command("retry")
@click.argument("entry_id")
@click.option("--force", is_flag=True,
              help="Apply even when the task already has later changes.")
@PARTITION_OPTION
def retry(entry_id: str, force: bool, partition: int | None) -> None:
    """Apply a dead-lettered event once (ENTRY_ID as listed), then remove it."""
    with operations() as ops:
        p = ops.one_partition(partition)
        try:
            done = letters.retry(ops.dead_letters(p), ops.transaction(p), ops.versions,
                                 entry_id, force=force, name=ops.checkpoint_name(p),
                                 timezone=ops.settings.transfer_timezone)
        except letters.DeadLetterNotFound:
            raise click.ClickException(f"no dead letter {entry_id}") from None
        except letters.RetryRefused as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(done.message)


@dead_letters.command("drop")
@click.argument("entry_id")
@PARTITION_OPTION
def drop(entry_id: str, partition: int | None) -> None:
    """Remove a dead letter without applying it."""
    with operations() as ops:
        p = ops.one_partition(partition)
        try:
            letters.drop(ops.dead_letters(p), entry_id)
        except letters.DeadLetterNotFound:
            raise click.ClickException(f"no dead letter {entry_id}") from None
    click.echo(f"dropped {entry_id}")
