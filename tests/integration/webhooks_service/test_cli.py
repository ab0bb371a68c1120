"""`taskstream webhooks list|deliveries|replay|resend` on the webhooks database, with the
`webhooks` process's loops delivering to a receiver on loopback."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from services.entrypoints.cli import main
from testbed.polling import wait_for
from testbed.receiver import Receiver
from tests.integration.webhooks_service.delivery_kit import Kit


def invoke(*args: str) -> Result:
    """Run `taskstream webhooks <args>` in process (the environment names the database)."""
    return CliRunner().invoke(main, ["webhooks", *args])


def delivered(kit: Kit, count: int) -> bool:
    """`count` deliveries recorded as delivered."""
    return kit.rows("SELECT count(*) FROM deliveries WHERE status = 'delivered'") == [(count,)]


def test_list_shows_every_subscription(kit: Kit, process: None) -> None:
    first, _ = kit.subscribe("http://127.0.0.1:9/a")
    second, _ = kit.subscribe("http://127.0.0.1:9/b", event_types=["TaskCreated"])
    shown = invoke("list")
    assert shown.exit_code == 0, shown.output
    lines = [line.split("\t") for line in shown.stdout.splitlines()]
    assert [(int(id_), url) for id_, _paused, url, *_ in lines] == [
        (first, "http://127.0.0.1:9/a"), (second, "http://127.0.0.1:9/b")]
    rows = [json.loads(line) for line in invoke("list", "--json").stdout.splitlines()]
    assert [(r["id"], r["event_types"], r["paused"]) for r in rows] == [
        (first, None, False), (second, ["TaskCreated"], False)]
    assert "secret" not in rows[0]


def test_deliveries_are_listed_and_a_replay_delivers_again(kit: Kit, receiver: Receiver,
                                                           process: None) -> None:
    subscription, secret = kit.subscribe(receiver.url)
    receiver.secrets.append(secret)
    sent = [kit.events.created(task) for task in (1, 2, 3)]
    kit.bus.publish(sent)
    wait_for(lambda: delivered(kit, 3), what="three deliveries recorded")

    listed = invoke("deliveries", str(subscription))
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[1:3] for line in listed.stdout.splitlines()] == [
        ["delivered", f"seq {e.seq}"] for e in reversed(sent)]  # newest first
    assert "3 of 3" in listed.stderr
    rows = [json.loads(line) for line in
            invoke("deliveries", str(subscription), "--json", "--limit", "2").stdout.splitlines()]
    assert [(r["seq"], r["event_id"], r["attempts"]) for r in rows] == [
        (3, sent[2].event_id, 1), (2, sent[1].event_id, 1)]
    assert invoke("deliveries", str(subscription), "--status", "failed").stdout == ""

    replayed = invoke("replay", str(subscription), "--from-seq", "1")
    assert replayed.exit_code == 0, replayed.output
    assert f"events 2..3 of webhook {subscription}" in replayed.stdout
    wait_for(lambda: len(receiver.received) == 5, what="the replayed deliveries")
    assert sorted(r.seq for r in receiver.received[3:]) == [2, 3]
    assert receiver.unverified == []


def test_an_unknown_webhook_or_delivery_is_one_line(kit: Kit, process: None) -> None:
    for args, problem in ((["deliveries", "404"], "no such webhook"),
                          (["replay", "404", "--from-seq", "0"], "no such webhook"),
                          (["resend", "404", "1"], "no such delivery")):
        found = invoke(*args)
        assert (found.exit_code, found.stdout) == (1, ""), args
        assert f"Error: {problem}\n" in found.stderr, args
