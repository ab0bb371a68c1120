"""The webhooks service's `taskstream` commands: `webhooks run|list|deliveries|replay|resend`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import click

from services.webhooks_service.adapters.subscriptions import sql_transaction
from services.webhooks_service.config import load_settings
from services.webhooks_service.service_layer import subscriptions as webhooks
from services.webhooks_service.service_layer.subscriptions import (
    DeliveryNotFound,
    NotResendable,
    SubscriptionNotFound,
    Transaction,
)
from services.webhooks_service.service_layer.views import Page
from shared.db import create_db_engine
from shared.pagination import MAX_PER_PAGE

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")


@contextmanager
def subscriptions() -> Iterator[Transaction]:
    """The webhooks database for one command; a missing subscription is one line."""
    engine = create_db_engine(load_settings().database_url, attempts=1)
    try:
        yield sql_transaction(engine)
    except SubscriptionNotFound:
        raise click.ClickException("no such webhook") from None
    except DeliveryNotFound:
        raise click.ClickException("no such delivery") from None
    except NotResendable:
        raise click.ClickException("only a failed delivery can be re-sent") from None
    finally:
        engine.dispose()


def _print(rows: list[Any], as_json: bool, line: str) -> None:
    """Each row as a JSON line, or formatted by `line`."""
    for row in rows:
        fields = asdict(row)
        click.echo(json.dumps(fields, default=str) if as_json else line.format(**fields))


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook subscriptions and their deliveries."""


@webhooks_group.command("run")
def run() -> None:
    """Run the webhooks process: queue the event stream and send the deliveries."""
    from services.webhooks_service.entrypoints.webhooks import run_webhooks

    run_webhooks()


@webhooks_group.command("list")
@JSON_OPTION
def list_webhooks(as_json: bool) -> None:
    """List every subscription: id, state, URL, event types."""
    found: list[Any] = []
    with subscriptions() as transaction:
        page = 1
        while batch := webhooks.list_page(transaction, page, MAX_PER_PAGE).items:
            found += batch
            page += 1
    _print(found, as_json, "{id}\t{paused}\t{url}\t{event_types}\t{paused_reason}")


@webhooks_group.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MAX_PER_PAGE))
@JSON_OPTION
def deliveries(webhook_id: int, status: str | None, limit: int, as_json: bool) -> None:
    """List a subscription's deliveries, newest first."""
    with subscriptions() as transaction:
        found: Page[Any] = webhooks.deliveries(transaction, webhook_id, status, 1, limit)
    _print(found.items, as_json, "{id}\t{status}\tseq {seq}\t{event_type}\ttask {task_id}\t"
                                 "{attempts} attempts\t{last_status_code}\t{last_error}")
    if not as_json:
        click.echo(f"{len(found.items)} of {found.total}", err=True)


@webhooks_group.command("replay")
@click.argument("webhook_id", type=int)
@click.option("--from-seq", type=click.IntRange(0), required=True,
              help="Deliver again every wanted event after this position of the log.")
def replay(webhook_id: int, from_seq: int) -> None:
    """Deliver a subscription's events after a position again (the process queues them)."""
    with subscriptions() as transaction:
        made = webhooks.replay(transaction, webhook_id, from_seq)
    click.echo(f"replay {made.id}: events {made.from_seq + 1}..{made.through_seq} "
               f"of webhook {webhook_id}{' (nothing to replay)' if made.finished else ''}")


@webhooks_group.command("resend")
@click.argument("webhook_id", type=int)
@click.argument("delivery_id", type=int)
def resend(webhook_id: int, delivery_id: int) -> None:
    """Queue a failed delivery again."""
    with subscriptions() as transaction:
        webhooks.resend(transaction, webhook_id, delivery_id)
    click.echo(f"delivery {delivery_id} queued again")


COMMANDS: list[click.Command] = [webhooks_group]
