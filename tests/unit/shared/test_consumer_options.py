"""A consumer is named after its process unless its options name it."""

from __future__ import annotations

import os
import socket

from shared.stream.options import ConsumerOptions


def test_an_unnamed_consumer_is_named_after_its_host_and_process() -> None:
    named = ConsumerOptions(group="logger", consumer="", batch_size=7).named()

    assert named.consumer == f"{socket.gethostname()}-{os.getpid()}"
    assert (named.group, named.batch_size) == ("logger", 7)


def test_a_configured_name_is_kept() -> None:
    options = ConsumerOptions(group="webhooks", consumer="webhooks-a")

    assert options.named() is options
